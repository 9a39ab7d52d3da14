# Serving image: `python -m slipway serve` (the TF-Serving-compatible model server) and
# `python -m slipway route` (the local weighted router). Only the serving packages are installed,
# pinned by the project's lock; no Airflow, no Great Expectations.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PIP_NO_CACHE_DIR=1 \
    SLIPWAY_SERVING_CACHE=/cache \
    OPENBLAS_NUM_THREADS=1

RUN useradd --create-home --uid 10001 slipway \
    && mkdir -p /cache \
    && chown 10001:10001 /cache
WORKDIR /opt/slipway

COPY requirements.txt docker/serving.requirements.txt ./
RUN pip install --no-cache-dir -r serving.requirements.txt

COPY pyproject.toml README.md ./
COPY slipway ./slipway
RUN pip install --no-cache-dir --no-deps /opt/slipway

USER 10001
EXPOSE 8501 8500
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["python", "-m", "slipway"]
CMD ["serve", "--help"]
