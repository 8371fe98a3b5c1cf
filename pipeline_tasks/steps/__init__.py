"""One module (or package) per state-machine task: validate, stage, transform, and the file moves."""
