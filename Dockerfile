# Production image: gunicorn serves the app, whitenoise serves the static files.
# The same image runs the web, worker and beat containers (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.base \
    TRIPLANE_ENV=production \
    WEB_CONCURRENCY=3

WORKDIR /app

# Runtime requirements only (no test tools); a layer of its own so code edits
# do not reinstall them. They all ship manylinux wheels today; a package that
# ever needs compiling would need build-essential added here.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Build the static files into the image. DEBUG=false selects whitenoise's
# compressed manifest storage; the SECRET_KEY here exists only for this step
# (settings refuse the development key when DEBUG is off) and is not kept.
RUN DEBUG=false SECRET_KEY=collectstatic-build-step-only \
    FIELD_ENCRYPTION_KEYS=Y29sbGVjdHN0YXRpYy1idWlsZC1zdGVwLW9ubHkhISE= \
    python manage.py collectstatic --noinput

# Code and static files stay root-owned and read-only to the app user.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent app
USER app

EXPOSE 8000
# gunicorn takes its worker count from WEB_CONCURRENCY.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
