"""Great Expectations suites, one JSON file per questionnaire (shipped as package data)."""

from pathlib import Path

SUITES_DIR = Path(__file__).parent
