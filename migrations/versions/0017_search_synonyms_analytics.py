"""Search synonyms (seeded from the shipped dictionary) and search analytics (issue 18)

- ``search_synonym``: groups of phrases that mean the same for search, applied as query
  expansion; seeded here from catalog/search/synonyms.txt (source 'shipped'), then
  edited by staff in the console.
- ``search_query_stat`` / ``search_click_stat``: per day, query and locale, how often it was
  searched, found nothing, and which listings its results led to. No personal data.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 02:18:58.766448
"""

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op

import marketplace.database

revision: str = '0017'
down_revision: str | Sequence[str] | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHIPPED = Path(__file__).resolve().parents[2] / "catalog" / "search" / "synonyms.txt"


def shipped_groups() -> list[list[str]]:
    """The shipped dictionary's groups, folded as catalog.search.text.fold does (the file is
    in simplified characters already)."""
    if not SHIPPED.exists():
        return []
    groups = []
    for line in SHIPPED.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        phrases = []
        for part in line.split("|"):
            phrase = " ".join(unicodedata.normalize("NFKC", part).lower().split())
            if phrase and phrase not in phrases:
                phrases.append(phrase)
        if len(phrases) >= 2:
            groups.append(phrases)
    return groups


def upgrade() -> None:
    op.create_table('search_query_stat',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('query', sa.String(length=200), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('searches', sa.Integer(), nullable=False),
    sa.Column('zero_results', sa.Integer(), nullable=False),
    sa.Column('last_results', sa.Integer(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_query_stat')),
    sa.UniqueConstraint('day', 'query', 'locale', name=op.f('uq_search_query_stat_day'))
    )
    with op.batch_alter_table('search_query_stat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_search_query_stat_day'), ['day'], unique=False)

    op.create_table('search_click_stat',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('query', sa.String(length=200), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_search_click_stat_product_id_product'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_click_stat')),
    sa.UniqueConstraint('day', 'query', 'locale', 'product_id', name=op.f('uq_search_click_stat_day'))
    )
    with op.batch_alter_table('search_click_stat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_search_click_stat_day'), ['day'], unique=False)
        batch_op.create_index(batch_op.f('ix_search_click_stat_product_id'), ['product_id'], unique=False)

    op.create_table('search_synonym',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phrases', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], name=op.f('fk_search_synonym_updated_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_synonym'))
    )
    now = datetime.now(UTC)
    table = sa.table('search_synonym', sa.column('phrases', sa.JSON()),
                     sa.column('source', sa.String()),
                     sa.column('created_at', marketplace.database.UTCDateTime(timezone=True)),
                     sa.column('updated_at', marketplace.database.UTCDateTime(timezone=True)))
    op.bulk_insert(table, [{'phrases': phrases, 'source': 'shipped', 'created_at': now,
                            'updated_at': now} for phrases in shipped_groups()])


def downgrade() -> None:
    op.drop_table('search_synonym')
    with op.batch_alter_table('search_click_stat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_search_click_stat_product_id'))
        batch_op.drop_index(batch_op.f('ix_search_click_stat_day'))

    op.drop_table('search_click_stat')
    with op.batch_alter_table('search_query_stat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_search_query_stat_day'))

    op.drop_table('search_query_stat')
