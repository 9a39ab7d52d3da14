# Step image: `python -m slipway <step>` (ingest, validate, train, evaluate) in a pod.
# Installs the pinned lock (requirements.txt), then Slipway itself without dependencies.
# For GPU nodes, build FROM a CUDA base and swap tensorflow-cpu for tensorflow[and-cuda] in the lock.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PIP_NO_CACHE_DIR=1

RUN useradd --create-home --uid 10001 slipway
WORKDIR /opt/slipway

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY pyproject.toml README.md ./
COPY slipway ./slipway
COPY operators ./operators
COPY dags/pipelines ./pipelines
RUN pip install --no-cache-dir --no-deps /opt/slipway

USER 10001
ENTRYPOINT ["python", "-m", "slipway"]
CMD ["--help"]
