"""The command line, `inception-retrain`: argument parsing, console progress of a local run, and
the Kubeflow subcommands. The top layer: it may import every other package, none imports it."""
