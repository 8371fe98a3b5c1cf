"""Arrow to Spark schema mapping for the staged tables."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from pyspark.sql import types as T


def spark_type(arrow_type: pa.DataType) -> T.DataType:
    if pa.types.is_int64(arrow_type):
        return T.LongType()
    if pa.types.is_int32(arrow_type):
        return T.IntegerType()
    if pa.types.is_decimal(arrow_type):
        return T.DecimalType(arrow_type.precision, arrow_type.scale)
    if pa.types.is_timestamp(arrow_type):
        return T.TimestampType()
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return T.StringType()
    raise TypeError(f"no Spark type for {arrow_type}")


def spark_schema(fields: Iterable[pa.Field]) -> T.StructType:
    return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in fields])
