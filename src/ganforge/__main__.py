"""`python -m ganforge ...` (also what `torchrun -m ganforge train ...` runs)."""

from ganforge.cli.main import main

if __name__ == "__main__":
    main()
