# Airflow image: scheduler, API server, workers and triggerer. Orchestrates only: no TensorFlow.
# The providers and Slipway's Airflow side from docker/locks/airflow.txt (a subset of the tested lock).
# checkov:skip=CKV_DOCKER_2: health is probed per component by the Helm chart (scheduler/triggerer jobs, API /health)
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root docker/locks/airflow.txt /tmp/lock.txt
COPY --chown=airflow:root pyproject.toml README.md /tmp/slipway/
COPY --chown=airflow:root slipway /tmp/slipway/slipway
COPY --chown=airflow:root operators /tmp/slipway/operators
RUN pip install --no-cache-dir -r /tmp/lock.txt \
    && pip install --no-cache-dir --no-deps /tmp/slipway \
    && rm -rf /tmp/slipway /tmp/lock.txt
COPY --chown=airflow:root dags /opt/airflow/dags
USER 50000:0
