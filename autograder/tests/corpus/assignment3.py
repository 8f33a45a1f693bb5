"""Assignment 3's corpus (fine-tuning): realistic mistakes and valid alternative solutions.

Assignment 3 has 12 points: test_config 1, test_train 2, test_curves 1, test_confusion 2 and
the grader's own held-out evaluation of the handed-in weights, validation_accuracy 6. Every
case trains under the grading budget (deterministic in a graded kernel), so only cases whose
held-out points are certain before they run are here: 0 (not fine-tuned, collapsed, trained on
its validation images) or 6 (the reference run's weights, which reach the line with room).
"""

from __future__ import annotations

from corpus.mistakes import Mistake
from tlcourse.grading.student import checks

A = "03-finetuning"


def _config(**changes) -> str:
    """The solution's CONFIG cell with some settings changed."""
    settings = {
        "experiment": "'E3'",
        "epochs": "budget.epochs",
        "learning_rate": "1e-4",
        "image_size": "32",
        "normalization": "'imagenet'",
        "seed": "budget.seed",
    } | changes
    fields = ", ".join(f"{name}={value}" for name, value in settings.items())
    return f"CONFIG = TrainConfig({fields})\n"


TRAIN = (
    "model = transfer_model(classes=10, input_shape=(CONFIG.image_size, CONFIG.image_size, 3))\n"
)
VAL_DS = (
    "val_ds = make_dataset(val_set.images, val_set.labels, num_classes=10, batch_size=256,\n"
    "                      normalization=CONFIG.normalization, image_size=CONFIG.image_size)\n"
)
PREDICTED = VAL_DS + "predicted = model.predict(val_ds, verbose=0).argmax(axis=1)\n"
PLOT = "plot_confusion_matrix(matrix, CIFAR10_CLASSES, title='validation')\n"

CASES: tuple[Mistake, ...] = (
    Mistake(
        "collapsed-at-1e-1",
        A,
        "config",
        _config(learning_rate="1e-1"),
        {"test_config": 0, "test_train": 0, "validation_accuracy": 0},
        ("use 1e-4", "Adam kills fire9's ReLUs", "Score: 0 of 6"),
        diagnoses=(checks.RATE_TOO_HIGH, checks.COLLAPSED),
    ),
    Mistake(
        "head-only-e1",
        A,
        "config",
        _config(experiment="'E1'"),
        {"test_config": 0, "validation_accuracy": 0},
        ("CONFIG trains 'E1'", "are still the ImageNet ones", "Score: 0 of 6"),
        diagnoses=(checks.NOT_FINE_TUNED,),
    ),
    Mistake(
        "e2-instead-of-e3",
        A,
        "config",
        _config(experiment="'E2'"),
        {"test_config": 0, "validation_accuracy": 0},
        ("CONFIG trains 'E2'", "conv1, fire2, fire3, fire4, fire5, fire6, fire7 are still"),
        diagnoses=(checks.NOT_FINE_TUNED,),
    ),
    Mistake(
        "inputs-divided-by-255-only",
        A,
        "config",
        _config(normalization="'unit'"),
        {"test_config": 0},
        ("CONFIG's normalization is 'unit'", "normalization='imagenet'"),
        diagnoses=(checks.NOT_STANDARDISED,),
    ),
    Mistake(
        "baseline-weights-handed-in",
        A,
        "train",
        "from dataclasses import replace\n"
        + TRAIN
        + "baseline = fit(model, train_set, val_set, replace(CONFIG, experiment='E1'), verbose=0)\n"
        "tuned = transfer_model(classes=10, input_shape=(32, 32, 3))\n"
        "result = fit(tuned, train_set, val_set, CONFIG, verbose=2)\n",
        {"validation_accuracy": 0},
        ("are still the ImageNet ones (the hand-in says E3)",),
        diagnoses=(checks.NOT_FINE_TUNED,),
        also={
            "confusion": VAL_DS
            + "matrix = evaluate_model(tuned, val_ds, CIFAR10_CLASSES).confusion_matrix\n"
            + PLOT
        },
    ),
    Mistake(
        "handed-in-model-never-trained",
        A,
        "train",
        TRAIN + "result = fit(transfer_model(classes=10), train_set, val_set, CONFIG, verbose=2)\n",
        {"test_confusion": 0, "validation_accuracy": 0},
        ("the trained model's last validation accuracy", "are still the ImageNet ones"),
        diagnoses=(checks.MATRIX_NOT_THIS_MODEL, checks.NOT_FINE_TUNED),
    ),
    Mistake(
        "config-changed-after-training",
        A,
        "train",
        TRAIN + "result = fit(model, train_set, val_set, CONFIG, verbose=2)\n"
        "CONFIG = TrainConfig(experiment='E3', epochs=budget.epochs, learning_rate=2e-4,\n"
        "                     image_size=32, normalization='imagenet', seed=budget.seed)\n",
        {"test_train": 1},
        ("The model was trained with learning_rate 0.0001 (CONFIG: 0.0002)",),
        diagnoses=(checks.CONFIG_NOT_USED,),
    ),
    Mistake(
        "trained-on-train-and-validation",
        A,
        "train",
        "import numpy as np\n"
        "from tlcourse.imageset import ImageSet\n"
        "everything = ImageSet(np.concatenate([train_set.images, val_set.images]),\n"
        "                      np.concatenate([train_set.labels, val_set.labels]),\n"
        "                      train_set.class_names)\n"
        + TRAIN
        + "result = fit(model, everything, val_set, CONFIG, verbose=2)\n",
        {"test_train": 0},
        ("600 of the 600 validation images were among the images the model trained on",),
        diagnoses=(checks.TRAINED_ON_VALIDATION,),
    ),
    Mistake(
        "transposed-confusion-matrix",
        A,
        "confusion",
        VAL_DS
        + "matrix = evaluate_model(model, val_ds, CIFAR10_CLASSES).confusion_matrix.T\n"
        + PLOT,
        {"test_confusion": 1},
        ("rows must be true classes and columns predictions",),
        diagnoses=(checks.TRANSPOSED,),
    ),
    Mistake(
        "sklearn-arguments-swapped",
        A,
        "confusion",
        "from sklearn.metrics import confusion_matrix\n"
        + PREDICTED
        + "matrix = confusion_matrix(predicted, val_set.labels, labels=range(10))\n"
        + PLOT,
        {"test_confusion": 1},
        ("confusion_matrix(y_true, y_pred) in that order",),
        diagnoses=(checks.TRANSPOSED,),
    ),
    Mistake(
        "confusion-matrix-of-fractions",
        A,
        "confusion",
        VAL_DS + "counts = evaluate_model(model, val_ds, CIFAR10_CLASSES).confusion_matrix\n"
        "matrix = counts / counts.sum(axis=1, keepdims=True)\n" + PLOT,
        {"test_confusion": 1},
        ("Its entries are fractions",),
        diagnoses=(checks.MATRIX_OF_FRACTIONS,),
    ),
    Mistake(
        "confusion-on-the-training-set",
        A,
        "confusion",
        VAL_DS.replace("val_set", "train_set")
        + "matrix = evaluate_model(model, val_ds, CIFAR10_CLASSES).confusion_matrix\n"
        + PLOT,
        {"test_confusion": 0},
        ("It counts 2400 images, the validation set has 600",),
        diagnoses=(checks.MATRIX_NOT_VALIDATION,),
    ),
    Mistake(
        "confusion-with-unit-inputs",
        A,
        "confusion",
        VAL_DS.replace("normalization=CONFIG.normalization", "normalization='unit'")
        + "matrix = evaluate_model(model, val_ds, CIFAR10_CLASSES).confusion_matrix\n"
        + PLOT,
        {"test_confusion": 0},
        ("through a pipeline with CONFIG's normalisation",),
        diagnoses=(checks.MATRIX_NOT_THIS_MODEL,),
    ),
    Mistake(
        "one-panel-curves",
        A,
        "curves",
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot(result.history['loss'], label='training loss')\n"
        "ax.legend()\n",
        {"test_curves": 0},
        ("one panel for the loss, one for the accuracy",),
    ),
    # Valid alternatives: another correct way to the same answer gets full marks.
    Mistake(
        "valid-sklearn-confusion-and-own-curves",
        A,
        "confusion",
        "from sklearn.metrics import confusion_matrix\n"
        + PREDICTED
        + "matrix = confusion_matrix(val_set.labels, predicted, labels=range(10))\n"
        + PLOT,
        {},
        (),
        also={
            "curves": "import matplotlib.pyplot as plt\n"
            "fig, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=(10, 4))\n"
            "for name in ('loss', 'val_loss'):\n"
            "    loss_ax.plot(result.history[name], label=name)\n"
            "for name in ('accuracy', 'val_accuracy'):\n"
            "    accuracy_ax.plot(result.history[name], label=name)\n"
            "loss_ax.legend(), accuracy_ax.legend()\n"
        },
    ),
    Mistake(
        "valid-hand-counted-confusion",
        A,
        "confusion",
        "import numpy as np\n" + PREDICTED + "matrix = np.zeros((10, 10), dtype=int)\n"
        "for true, guess in zip(val_set.labels, predicted):\n"
        "    matrix[true, guess] += 1\n" + PLOT,
        {},
        (),
    ),
)
