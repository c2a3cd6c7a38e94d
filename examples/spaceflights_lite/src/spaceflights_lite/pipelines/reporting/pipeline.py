from kedro.pipeline import Node, Pipeline

from .nodes import format_fleet_report, price_by_capacity, summarise_fleet


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                summarise_fleet,
                ["preprocessed_shuttles", "preprocessed_companies", "params:include_unrated"],
                "fleet_summary",
                name="summarise_fleet",
            ),
            Node(
                format_fleet_report,
                ["fleet_summary", "params:currency"],
                "fleet_report",
                name="format_fleet_report",
            ),
            Node(
                price_by_capacity,
                ["model_input_table", "fleet_summary"],
                "capacity_prices",
                name="price_by_capacity",
            ),
        ],
        tags="reporting",
    )
