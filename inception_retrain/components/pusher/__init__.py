"""Pushes blessed models into TF Serving's version directories, atomically, with retention."""
