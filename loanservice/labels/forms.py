from wtforms import BooleanField, HiddenField, IntegerField, SelectField, SubmitField
from wtforms.validators import InputRequired, NumberRange

from ..forms import Form


class LabelPrintForm(Form):
    """Which stock and where on the sheet; the instruments come as ``tag`` fields or a scope."""

    stock = SelectField("Label stock", validate_choice=False,
                        validators=[InputRequired(message="Choose a label stock.")])
    start = IntegerField(
        "Start at label", default=1,
        validators=[InputRequired(message="Give the position of the first free label."),
                    NumberRange(min=1, message="Positions start at 1.")],
        description="On a part-used sheet, the first free label: counted across, then down, from 1 at the top left.",
        render_kw={"inputmode": "numeric", "min": 1},
    )
    scope = HiddenField()
    submit = SubmitField("Make the PDF")


class SetLabelPrintForm(LabelPrintForm):
    """A classroom set's own label, and if wanted its instruments' labels after it."""

    with_items = BooleanField("Also print a label for each instrument in the set",
                              description="They follow the set's label on the sheet, in asset tag order.")
