# charlm serve in a container: the package and its server, serving a run folder mounted read-only
# (see the README, "Deploy"):
#   docker build -t charlm .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/x:/model/x:ro" -e CHARLM_API_KEY=change-me charlm /model/x
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY charlm ./charlm
RUN pip install --no-cache-dir ".[serve]" \
    && useradd --create-home --uid 10001 charlm

USER charlm
ENV TF_CPP_MIN_LOG_LEVEL=2
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
ENTRYPOINT ["charlm", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["/model"]
