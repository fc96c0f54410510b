"""MLflow "model from code" file for the DPSRGAN pyfunc (see :mod:`dpsrgan.lifecycle.serving`).

MLflow copies this file into the logged model and executes it at load time; it only names the
model object, so loading runs our reviewed source rather than unpickling a Python object.
Importing it outside a model load merely registers the object with MLflow (no side effects).
"""

from mlflow.models import set_model

from dpsrgan.lifecycle.serving import SRPyfunc

set_model(SRPyfunc())
