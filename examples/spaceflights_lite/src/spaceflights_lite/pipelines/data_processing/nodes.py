"""Clean the raw tables and join them into one model input table."""

from __future__ import annotations

import pandas as pd


def _is_true(column: pd.Series) -> pd.Series:
    return column == "t"


def _parse_percentage(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column.fillna("").astype(str).str.replace("%", ""), errors="coerce") / 100


def _parse_money(column: pd.Series) -> pd.Series:
    return column.str.replace("$", "").str.replace(",", "").astype(float)


def preprocess_companies(companies: pd.DataFrame) -> pd.DataFrame:
    """Booleans from 't'/'f', the rating as a fraction (NaN when unrated)."""
    result = companies.copy()
    result["iata_approved"] = _is_true(result["iata_approved"])
    result["company_rating"] = _parse_percentage(result["company_rating"])
    return result


def preprocess_shuttles(shuttles: pd.DataFrame) -> pd.DataFrame:
    """Booleans from 't'/'f', the price as a number."""
    result = shuttles.copy()
    result["d_check_complete"] = _is_true(result["d_check_complete"])
    result["moon_clearance_complete"] = _is_true(result["moon_clearance_complete"])
    result["price"] = _parse_money(result["price"])
    return result


def create_model_input_table(
    shuttles: pd.DataFrame, companies: pd.DataFrame, reviews: pd.DataFrame
) -> pd.DataFrame:
    """Shuttles joined with their reviews and company; rows missing a value are dropped."""
    rated = shuttles.merge(reviews, left_on="id", right_on="shuttle_id")
    table = rated.merge(companies, left_on="company_id", right_on="id", suffixes=("", "_company"))
    return table.drop(columns=["shuttle_id", "id_company"]).dropna().reset_index(drop=True)
