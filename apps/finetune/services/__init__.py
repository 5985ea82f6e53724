"""Fine-tuning services: training files (``training_files``), the job lifecycle as the API drives it (``jobs``),
preparing and training a job on a worker (``training``), and serving its result (``deployment``)."""
