import pytest

from workers.finetune.config import ConfigError
from workers.finetune.options import job_options


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"n_epoch": 3}, "hyperparameters.n_epoch", "Unknown hyperparameter 'n_epoch'."),
        ({"n_epochs": "3"}, "hyperparameters.n_epochs", "must be a number, got '3'"),
        ({"batch_size": 4.5}, "hyperparameters.batch_size", "must be an integer, got 4.5"),
        ({"eval": 1}, "hyperparameters.eval", "must be true or false, got 1"),
        ({"max_steps": True}, "hyperparameters.max_steps", "must be an integer or null, got True"),
        ({"lr_scheduler": 3}, "hyperparameters.lr_scheduler", "must be a string, got 3"),
        ({"lr_scheduler": "step"}, "hyperparameters.lr_scheduler", None),
        ({"validation_split": "0.1"}, "hyperparameters.validation_split", None),
        ({"lora_r": 0}, "hyperparameters.lora_r", None),
    ],
)
def test_job_options_name_the_first_bad_option(raw, field, message):
    with pytest.raises(ConfigError) as caught:
        job_options(raw, method="lora", seed=None)
    assert caught.value.field == field
    if message is not None:
        assert caught.value.message == message


def test_job_options_drop_auto_and_fold_in_the_seed():
    options = job_options({"n_epochs": "auto", "batch_size": 2, "validation_split": 0.1}, method="full", seed=7)
    assert options == {"batch_size": 2, "seed": 7, "validation_split": 0.1}
    assert job_options({"lora_r": 0}, method="full", seed=None) == {"lora_r": 0}
