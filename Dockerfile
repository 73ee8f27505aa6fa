# Multi-stage: build the project's and its dependencies' wheels once, then install them into
# a slim image that runs as a non-root user. One image for every role:
#   web (default):  gunicorn service.wsgi:app      (GUNICORN_CMD_ARGS: workers, bind, ...)
#   worker:         python -m worker
#   deliveries:     python -m worker --deliveries   (webhooks and alert e-mails)
#   migrate:        flask --app service db upgrade && flask --app service model ensure
# Never publish the web's port to the network directly: its sync workers would wait on slow
# clients. Put nginx in front (deploy/nginx/commentguard.conf.template; compose's `proxy`
# service does it; docs/deploy.md, "A buffering proxy in front of gunicorn").
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service service
COPY models models
COPY worker worker
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=production JSON_LOGS=1 VAR_DIR=/data MODEL_DIR=/data/models \
    GUNICORN_CMD_ARGS="--bind 0.0.0.0:8000 --workers 2 --graceful-timeout 20 --timeout 30"
# uid 10001 owns /data, so a named volume mounted there starts out writable by it.
RUN useradd --create-home --uid 10001 app && mkdir -p /data/models && chown -R app /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
USER app
WORKDIR /home/app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["gunicorn", "service.wsgi:app"]
