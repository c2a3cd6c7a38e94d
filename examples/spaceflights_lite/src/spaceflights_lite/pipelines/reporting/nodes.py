"""Reports that only need the cleaned tables: they run in parallel with the model."""

from __future__ import annotations

import pandas as pd


def summarise_fleet(shuttles: pd.DataFrame, companies: pd.DataFrame, include_unrated: bool) -> pd.DataFrame:
    """Shuttle count, mean price and capacity per company location (unrated companies optional)."""
    if not include_unrated:
        companies = companies[companies["company_rating"].notna()]
    fleet = shuttles.merge(companies, left_on="company_id", right_on="id", suffixes=("", "_company"))
    return (
        fleet.groupby("company_location")
        .agg(shuttles=("id", "count"), mean_price=("price", "mean"), capacity=("passenger_capacity", "sum"))
        .reset_index()
        .sort_values("company_location")
    )


def format_fleet_report(summary: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Prices rounded and labelled with the reporting currency."""
    report = summary.copy()
    report["mean_price"] = report["mean_price"].round(2)
    report["currency"] = currency
    return report


def price_by_capacity(table: pd.DataFrame, fleet_summary: pd.DataFrame) -> pd.DataFrame:
    """Median price per passenger capacity, with the number of locations the fleet spans."""
    prices = table.groupby("passenger_capacity")["price"].median().round(2).reset_index()
    prices["locations"] = len(fleet_summary)
    return prices
