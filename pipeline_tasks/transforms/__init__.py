"""Pure computations on Arrow tables and Spark DataFrames: typing staged rows, cleaning, KPIs; no I/O."""
