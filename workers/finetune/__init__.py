"""Fine-tuning worker: dataset validation/cleaning and the LoRA/QLoRA/full training runner (no Django)."""
