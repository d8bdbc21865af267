"""Each analysis carries its clinic, and the clinic's pages get the indexes their plans asked for.

With 100,000 analyses in 20 clinics (manage.py seed_scale; bench/pages.py --explain), every
clinic-scoped read of analyses (analysis_list and what is built on it: the dashboard's tiles
and queue, the analyses pages, the worklist, the API list) filtered on patient.clinic_id,
three joins away: PostgreSQL walked all of the clinic's ~5,000 analyses through image, lesion
and patient for each tile (40-60 ms each, six on the dashboard), and a filter on another
table's column is something no index of this one can serve. Copying the clinic onto the
analysis (a patient never changes clinic) lets the indexes below answer directly:

- analysis_clinic_newest (clinic, queued_at DESC, id DESC): "newest first" lists (the
  dashboard's recent analyses, the analyses pages, the API list) read their page off the
  index, and their COUNT, and "analyses today" (a range on queued_at), scan one clinic's part.
- analysis_clinic_status (clinic, status, queued_at): the queue (queued or running, oldest
  first), the queued and failed tiles and the API's ?status= filter touch only those rows.

The clinic's FK gets no index of its own: both lead with it.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_clinic(apps, schema_editor) -> None:
    Analysis = apps.get_model("diagnosis", "Analysis")
    DermoscopicImage = apps.get_model("diagnosis", "DermoscopicImage")
    clinic_of_image = DermoscopicImage.objects.filter(pk=OuterRef("image_id")).values(
        "lesion__patient__clinic_id"
    )[:1]
    Analysis.objects.update(clinic_id=Subquery(clinic_of_image))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_sign_on_and_token_families"),
        ("diagnosis", "0011_lesion_care"),
    ]

    operations = [
        migrations.AddField(
            model_name="analysis",
            name="clinic",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=models.deletion.PROTECT,
                related_name="+",
                to="accounts.clinic",
            ),
        ),
        migrations.RunPython(copy_clinic, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="analysis",
            name="clinic",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                on_delete=models.deletion.PROTECT,
                related_name="+",
                to="accounts.clinic",
            ),
        ),
        migrations.AddIndex(
            model_name="analysis",
            index=models.Index(
                fields=["clinic", "-queued_at", "-id"], name="analysis_clinic_newest"
            ),
        ),
        migrations.AddIndex(
            model_name="analysis",
            index=models.Index(
                fields=["clinic", "status", "queued_at"], name="analysis_clinic_status"
            ),
        ),
    ]
