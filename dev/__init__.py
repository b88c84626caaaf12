"""The lab: experiments and research scripts, apart from the product (see dev/README.md)."""
