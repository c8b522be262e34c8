"""Early warning: anomalies in telemetry and incident volume, scored as the field scores them."""
