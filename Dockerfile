# The OverFeat teaching app in one container: CPU-only PyTorch, the shipped checkpoint
# (assets/demo.pt) and every pretrained weight inside the image, nothing downloaded at run time.
#
#   docker build -t overfeat-app .
#   docker run --rm -p 8501:8501 overfeat-app        # then open http://localhost:8501
#
# Several replicas behind nginx: deploy/docker-compose.yml; the whole story: docs/DEPLOY.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch and torchvision come from PyTorch's CPU-only index at the versions pinned in
# requirements.txt (a "+cpu" build satisfies "torch==X"): PyPI's wheel of the same version
# pulls several GB of CUDA libraries that a CPU server never uses. Build with
# --build-arg TORCH_INDEX= (empty) to take them from PyPI instead.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

WORKDIR /app

# Dependencies first, in their own layer: editing the app does not reinstall PyTorch.
COPY requirements.txt ./
RUN set -eux; \
    if [ -n "$TORCH_INDEX" ]; then \
        pip install --index-url "$TORCH_INDEX" $(grep -E '^(torch|torchvision)==' requirements.txt); \
    fi; \
    pip install -r requirements.txt; \
    python -c "import torch, torchvision, streamlit; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'streamlit', streamlit.__version__)"

# The repository minus what .dockerignore leaves out (.venv, runs/, test-artifacts/, .git,
# caches): app.py, app_pages/, overfeat/, .streamlit/config.toml and assets/ with demo.pt.
COPY . .

# A non-root user. The code stays owned by root (read-only to the app); the only place the
# app writes is the Training page's runs (overfeat/app/jobs.py), pointed at a folder it owns.
RUN set -eux; \
    useradd --create-home --uid 10001 --shell /usr/sbin/nologin app; \
    mkdir -p /app/runs/app-train; \
    chown -R app:app /app/runs; \
    test -f /app/assets/demo.pt; \
    test -f /app/.streamlit/config.toml
ENV OVERFEAT_APP_TRAIN_DIR=/app/runs/app-train \
    HOME=/home/app \
    MPLCONFIGDIR=/home/app/.config/matplotlib
USER app

EXPOSE 8501

# GET /_stcore/health answers "ok" once Streamlit's runtime is ready. python, not curl: the
# slim image has no curl. The start period covers the first import of torch.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=8); sys.exit(0 if r.status == 200 and r.read().strip() == b'ok' else 1)"]

# Headless, on every interface of the container, port 8501; the rest of the settings come
# from .streamlit/config.toml in /app (maxUploadSize, no file watcher, no usage statistics).
CMD ["streamlit", "run", "app.py", \
     "--server.headless", "true", \
     "--server.address", "0.0.0.0", \
     "--server.port", "8501", \
     "--browser.gatherUsageStats", "false"]
