"""Event-driven e-commerce KPI pipeline: validation, Delta staging, Spark KPIs."""

__version__ = "0.1.0"
