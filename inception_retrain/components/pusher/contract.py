"""The custom properties the ServingPusher sets on its PushedModel, read back by the run report.
No TensorFlow or TFX import."""
PUSHED = "pushed"                          # int 1 or 0
PUSHED_DESTINATION = "pushed_destination"  # <push_base>/<version>
PUSHED_VERSION = "pushed_version"          # int
PRUNED_VERSIONS = "pruned_versions"        # "3,4": versions removed by retention
ALREADY_SERVED = "already_served"          # int 1: the served version already held this model
