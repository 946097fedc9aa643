"""cpr-harness: build QEMU trees in containers and prove that live update (CPR) works on them."""

__version__ = "0.1.0"
