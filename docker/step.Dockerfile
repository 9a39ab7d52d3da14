# Step image (CPU): `python -m slipway <step>` (ingest, validate, train, evaluate) in a pod.
# Its own lock (docker/locks/step.txt, a subset of the tested lock: no Airflow, moto or ruff).
# checkov:skip=CKV_DOCKER_2: a batch step runs to completion; Kubernetes watches the exit code, there is nothing to probe
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY slipway ./slipway
COPY operators ./operators
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11.14-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
COPY docker/locks/step.txt /tmp/lock.txt
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir -r /tmp/lock.txt \
    && pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/lock.txt \
    && useradd --no-create-home --uid 10001 --user-group slipway
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "slipway"]
CMD ["--help"]
