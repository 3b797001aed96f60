"""The Dockerfile language: directives, lines, heredocs, words (parser.py), variable
substitution (expand.py) and the instructions it yields (instructions.py)."""
