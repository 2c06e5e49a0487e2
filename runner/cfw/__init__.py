"""cfw: cloud compute for Snakemake workflows — provision with Terraform, run, tear down."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cfw")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
