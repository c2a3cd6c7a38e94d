"""Generate the raw tables from a seed, so every run of the example sees the same data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

SHUTTLE_TYPES = ("Type V5", "Type F5", "Type A3", "Type C2")
ENGINE_TYPES = ("Quantum", "Plasma", "Nuclear")


def generate_companies(seed: int, data_generation: dict[str, Any]) -> pd.DataFrame:
    """Companies with a rating written as a percentage string and a 't'/'f' flag, like the real spaceflights."""
    rng = np.random.default_rng(seed)
    n = int(data_generation["n_companies"])
    ratings = rng.integers(40, 101, size=n).astype(str)
    ratings = np.where(rng.random(n) < 0.1, "", np.char.add(ratings, "%"))  # some companies are unrated
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "company_rating": ratings,
            "company_location": rng.choice(["Niue", "Anguilla", "Russian Federation", "Barbados"], size=n),
            "iata_approved": rng.choice(["t", "f"], size=n),
        }
    )


def generate_shuttles(seed: int, data_generation: dict[str, Any]) -> pd.DataFrame:
    """Shuttles with prices as strings ("$1,234.0") and a price that depends on the features plus noise."""
    rng = np.random.default_rng(seed + 1)
    n = int(data_generation["n_shuttles"])
    engines = rng.integers(1, 5, size=n)
    capacity = rng.integers(2, 9, size=n)
    crew = rng.integers(1, 6, size=n)
    d_check = rng.choice(["t", "f"], size=n)
    moon = rng.choice(["t", "f"], size=n)
    price = (
        800 + 450 * engines + 120 * capacity + 60 * crew + 300 * (d_check == "t") + rng.normal(0, 80, size=n)
    )
    return pd.DataFrame(
        {
            "id": np.arange(10_001, 10_001 + n),
            "company_id": rng.integers(1, int(data_generation["n_companies"]) + 1, size=n),
            "shuttle_type": rng.choice(SHUTTLE_TYPES, size=n),
            "engine_type": rng.choice(ENGINE_TYPES, size=n),
            "engines": engines,
            "passenger_capacity": capacity,
            "crew": crew,
            "d_check_complete": d_check,
            "moon_clearance_complete": moon,
            "price": [f"${p:,.1f}" for p in price],
        }
    )


def generate_reviews(shuttles: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One review row per shuttle, scores loosely tied to price."""
    rng = np.random.default_rng(seed + 2)
    n = len(shuttles)
    return pd.DataFrame(
        {
            "shuttle_id": shuttles["id"].to_numpy(),
            "review_scores_rating": np.clip(rng.normal(85, 8, size=n), 20, 100).round(1),
            "number_of_reviews": rng.integers(0, 200, size=n),
        }
    )
