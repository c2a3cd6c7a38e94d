"""Split, train a random forest on the price, evaluate it.

scikit-learn is imported inside the nodes: every step process loads the pipeline registry, and only the
steps that train or evaluate should pay for importing it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def split_data(
    table: pd.DataFrame, features: list[str], test_size: float, seed: int, model_options: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Train/test split of ``features`` → ``model_options['target']``."""
    from sklearn.model_selection import train_test_split

    x = table[list(features)].astype(float)
    y = table[model_options["target"]]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=float(test_size), random_state=int(seed)
    )
    return x_train, x_test, y_train, y_test


def train_model(x_train: pd.DataFrame, y_train: pd.Series, seed: int, model_options: dict[str, Any]):
    """A random forest with the hyper-parameters from ``model_options['regressor']``."""
    from sklearn.ensemble import RandomForestRegressor

    settings = model_options["regressor"]
    model = RandomForestRegressor(
        n_estimators=int(settings["n_estimators"]),
        max_depth=int(settings["max_depth"]),
        random_state=int(seed),
        n_jobs=1,
    )
    return model.fit(x_train, y_train)


def evaluate_model(model, x_test: pd.DataFrame, y_test: pd.Series) -> dict[str, float]:
    """R² and mean absolute error on the held-out rows."""
    from sklearn.metrics import mean_absolute_error, r2_score

    predicted = model.predict(x_test)
    metrics = {
        "r2": float(r2_score(y_test, predicted)),
        "mae": float(mean_absolute_error(y_test, predicted)),
        "rows": int(np.asarray(y_test).shape[0]),
    }
    log.info("Model has R² %.3f and MAE %.1f on %d test rows", metrics["r2"], metrics["mae"], metrics["rows"])
    return metrics
