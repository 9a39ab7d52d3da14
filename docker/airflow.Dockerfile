# Airflow image: scheduler, API server, workers and triggerer. Orchestrates only: no TensorFlow.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root pyproject.toml README.md /opt/slipway/
COPY --chown=airflow:root slipway /opt/slipway/slipway
COPY --chown=airflow:root operators /opt/slipway/operators
RUN pip install --no-cache-dir \
        "apache-airflow==3.3.2" \
        "apache-airflow-providers-cncf-kubernetes==10.25.0" \
        "apache-airflow-providers-amazon==9.39.0" \
        "/opt/slipway"

COPY --chown=airflow:root dags /opt/airflow/dags
