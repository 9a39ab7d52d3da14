# Step image (GPU): the same steps on NVIDIA GPUs. TensorFlow with CUDA comes from the pinned
# official base; the rest from docker/locks/step-gpu.txt (no JAX: on a GPU Slipway trains with
# TensorFlow, XLA and mixed float16 - slipway/training/backend.py).
# checkov:skip=CKV_DOCKER_2: a batch step runs to completion; Kubernetes watches the exit code, there is nothing to probe
FROM tensorflow/tensorflow:2.21.0-gpu AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY slipway ./slipway
COPY operators ./operators
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM tensorflow/tensorflow:2.21.0-gpu
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
COPY docker/locks/step-gpu.txt /tmp/lock.txt
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir -r /tmp/lock.txt \
    && pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/lock.txt \
    && useradd --no-create-home --uid 10001 --user-group slipway
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "slipway"]
CMD ["--help"]
