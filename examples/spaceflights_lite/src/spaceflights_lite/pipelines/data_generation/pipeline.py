from kedro.pipeline import Node, Pipeline

from .nodes import generate_companies, generate_reviews, generate_shuttles


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                generate_companies,
                ["params:seed", "params:data_generation"],
                "companies",
                name="generate_companies",
            ),
            Node(
                generate_shuttles,
                ["params:seed", "params:data_generation"],
                "shuttles",
                name="generate_shuttles",
            ),
            Node(generate_reviews, ["shuttles", "params:seed"], "reviews", name="generate_reviews"),
        ],
        tags="data_generation",
    )
