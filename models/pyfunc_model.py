"""The definition MLflow runs when it loads a registered giantwatch model (models-from-code).

Logged by `training.train` as the model's code; importing it only declares the model.
"""

from mlflow.models import set_model

from models.pyfunc import TierProbabilityModel

set_model(TierProbabilityModel())
