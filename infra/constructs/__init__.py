"""One CDK construct per concern of the deployment; infra/app.py wires them together."""
