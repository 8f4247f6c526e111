"""Alert sensors: failed runs and stale bar series (see ``sensors.py``)."""

from tt_platform.defs.alerts.sensors import SENSORS, data_gap_sensor, run_failure_alert_sensor

__all__ = ["SENSORS", "data_gap_sensor", "run_failure_alert_sensor"]
