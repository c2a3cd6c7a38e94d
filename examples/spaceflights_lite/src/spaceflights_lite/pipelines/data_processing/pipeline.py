from kedro.pipeline import Node, Pipeline

from .nodes import create_model_input_table, preprocess_companies, preprocess_shuttles


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(preprocess_companies, "companies", "preprocessed_companies", name="preprocess_companies"),
            Node(preprocess_shuttles, "shuttles", "preprocessed_shuttles", name="preprocess_shuttles"),
            Node(
                create_model_input_table,
                ["preprocessed_shuttles", "preprocessed_companies", "reviews"],
                "model_input_table",
                name="create_model_input_table",
            ),
        ],
        tags="data_processing",
    )
