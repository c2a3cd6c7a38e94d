from kedro.pipeline import Node, Pipeline

from .nodes import evaluate_model, split_data, train_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                split_data,
                [
                    "model_input_table",
                    "params:features",
                    "params:test_size",
                    "params:seed",
                    "params:model_options",
                ],
                ["X_train", "X_test", "y_train", "y_test"],
                name="split_data",
            ),
            Node(
                train_model,
                ["X_train", "y_train", "params:seed", "params:model_options"],
                "regressor",
                name="train_model",
                tags="training",
            ),
            Node(evaluate_model, ["regressor", "X_test", "y_test"], "metrics", name="evaluate_model"),
        ],
        tags="data_science",
    )
