"""Entry point of the container action (the Dockerfile's ENTRYPOINT runs ``python -m action``)."""

from action.main import main

main()
