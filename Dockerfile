FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# "[modeling]" for the GPU worker (torch, open_clip: docker-compose.yml's worker-gpu); empty for
# the web app and the CPU and I/O workers.
ARG EXTRAS=""
COPY pyproject.toml ./
COPY . .
RUN pip install --no-cache-dir ".${EXTRAS}"
RUN DEBUG=1 python manage.py collectstatic --noinput
EXPOSE 8000
# Alive (no database needed): docker-compose.yml's web service checks /readyz instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
