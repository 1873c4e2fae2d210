"""Training the reader (``qa train``): needs torch, and is never imported by the service.

- ``data``: training and validation rows from the corpus and the service's retrieval;
- ``model``: the PyTorch model and the loop that fits it;
- ``export``: ONNX export and int8 quantisation;
- ``fit``: choosing on validation (sentences read, threshold, confidence curves);
- ``card``: the model card;
- ``report``: scoring question sets through the service, for the card;
- ``settings``: what a run can vary;
- ``sets``: the validation sets asked through the service (``--validation-set`` too);
- ``contrast``: contrast questions, taught as unanswered (``--contrast``);
- ``balance``: training questions repeated by their overlap (``--balance-overlap``), and
  ``overlaps``, the table of that overlap by kind of question;
- ``choosing``: the choice on the validation sets, into the card (``--rechoose`` too);
- ``run``: the whole run.
"""

from .choosing import rechoose_reader
from .run import train_reader
from .settings import TrainSettings

__all__ = ["TrainSettings", "rechoose_reader", "train_reader"]
