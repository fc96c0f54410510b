-- Run once by the postgres image on an empty volume: the basic-auth app's own database.
CREATE DATABASE mlflow_auth OWNER mlflow;
