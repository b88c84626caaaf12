"""``python -m rewardlab`` runs the command line."""

from rewardlab.cli import run

if __name__ == "__main__":
    run()
