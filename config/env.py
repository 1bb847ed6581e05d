"""Environment access for settings (django-environ).

Every deploy-specific value comes from the environment (or a `.env` file in the
project root); the defaults are safe for local development only.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_dotenv = BASE_DIR / ".env"
if _dotenv.exists():
    environ.Env.read_env(_dotenv)

# Marks the development secret so production settings can refuse it.
DEV_SECRET_KEY = "django-insecure-triplane-development-only-change-me"
