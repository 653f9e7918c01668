"""`python -m limr`: the same as the `limr` command."""

from limr.cli.main import main

# The guard matters: vLLM and Ray spawn worker processes that re-import __main__.
if __name__ == "__main__":
    main()
