"""Contracts and 发票 (issue 14): technology contracts signed online, VAT invoices

- ``contract``: one row per version of an order's technology contract (type, results
  ownership, terms snapshot, the PDF and its SHA-256, the signed copy); one live version per
  order (partial unique index ``uq_contract_live_per_order``);
- ``contract_signature``: one per side and version (signer, organisation, time, IP, SHA-256);
- ``invoice_profile``: an enterprise's 开票信息;
- ``invoice``: a 发票 requested for an order, issued (number unique per institution) or
  red-letter reversed;
- ``platform_fee_invoice``: the platform's 发票 for its fee on a settlement statement.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:11:19.807353
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.database

revision: str = '0014'
down_revision: str | Sequence[str] | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('invoice_profile',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('taxpayer_number', sa.String(length=20), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('bank_name', sa.String(length=100), nullable=False),
    sa.Column('bank_account', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('created_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind in ('ordinary', 'special')", name=op.f('ck_invoice_profile_kind')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_invoice_profile_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_profile'))
    )
    with op.batch_alter_table('invoice_profile', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_profile_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('platform_fee_invoice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('provider_org_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('tax_rate_bp', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issued_by_id'], ['user_account.id'], name=op.f('fk_platform_fee_invoice_issued_by_id_user_account')),
    sa.ForeignKeyConstraint(['provider_org_id'], ['organisation.id'], name=op.f('fk_platform_fee_invoice_provider_org_id_organisation')),
    sa.ForeignKeyConstraint(['statement_id'], ['settlement_statement.id'], name=op.f('fk_platform_fee_invoice_statement_id_settlement_statement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_fee_invoice')),
    sa.UniqueConstraint('number', name=op.f('uq_platform_fee_invoice_number')),
    sa.UniqueConstraint('statement_id', name=op.f('uq_platform_fee_invoice_statement_id'))
    )
    with op.batch_alter_table('platform_fee_invoice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_platform_fee_invoice_provider_org_id'), ['provider_org_id'], unique=False)

    op.create_table('contract',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('contract_type', sa.String(length=16), nullable=False),
    sa.Column('ownership', sa.String(length=32), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('signed_pdf', sa.LargeBinary(), nullable=True),
    sa.Column('signed_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('signed_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('superseded_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_nudged_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("contract_type in ('development', 'transfer', 'licence', 'consulting', 'service')", name=op.f('ck_contract_contract_type')),
    sa.CheckConstraint("ownership in ('buyer', 'institution_with_licence', 'joint')", name=op.f('ck_contract_ownership')),
    sa.CheckConstraint("status in ('draft', 'awaiting_signatures', 'signed', 'superseded')", name=op.f('ck_contract_status')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_contract_version_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_contract_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['order_id'], ['purchase_order.id'], name=op.f('fk_contract_order_id_purchase_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract')),
    sa.UniqueConstraint('order_id', 'version', name='uq_contract_order_version')
    )
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_contract_status_signed_at', ['status', 'signed_at'], unique=False)
        batch_op.create_index('uq_contract_live_per_order', ['order_id'], unique=True, sqlite_where=sa.text("status <> 'superseded'"), postgresql_where=sa.text("status <> 'superseded'"))

    op.create_table('invoice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('buyer_org_id', sa.Integer(), nullable=False),
    sa.Column('provider_org_id', sa.Integer(), nullable=False),
    sa.Column('profile_id', sa.Integer(), nullable=True),
    sa.Column('profile', sa.JSON(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_requested', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=True),
    sa.Column('code', sa.String(length=12), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('tax_rate_bp', sa.Integer(), nullable=True),
    sa.Column('file_stored_name', sa.String(length=80), nullable=True),
    sa.Column('file_name', sa.String(length=200), nullable=True),
    sa.Column('file_content_type', sa.String(length=40), nullable=True),
    sa.Column('file_size', sa.Integer(), nullable=True),
    sa.Column('file_sha256', sa.String(length=64), nullable=True),
    sa.Column('issued_by_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reversed_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reversed_by_id', sa.Integer(), nullable=True),
    sa.Column('reversal_number', sa.String(length=20), nullable=True),
    sa.Column('reversal_reason', sa.Text(), nullable=True),
    sa.Column('last_nudged_at', marketplace.database.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind in ('ordinary', 'special')", name=op.f('ck_invoice_kind')),
    sa.CheckConstraint("status = 'requested' OR (number IS NOT NULL AND amount IS NOT NULL)", name=op.f('ck_invoice_issued_has_number')),
    sa.CheckConstraint("status in ('requested', 'issued', 'reversed')", name=op.f('ck_invoice_status')),
    sa.CheckConstraint('amount IS NULL OR amount > 0', name=op.f('ck_invoice_amount_positive')),
    sa.CheckConstraint('amount_requested > 0', name=op.f('ck_invoice_amount_requested_positive')),
    sa.CheckConstraint('tax_rate_bp IS NULL OR (tax_rate_bp >= 0 AND tax_rate_bp <= 10000)', name=op.f('ck_invoice_tax_rate_range')),
    sa.ForeignKeyConstraint(['buyer_org_id'], ['organisation.id'], name=op.f('fk_invoice_buyer_org_id_organisation')),
    sa.ForeignKeyConstraint(['issued_by_id'], ['user_account.id'], name=op.f('fk_invoice_issued_by_id_user_account')),
    sa.ForeignKeyConstraint(['order_id'], ['purchase_order.id'], name=op.f('fk_invoice_order_id_purchase_order')),
    sa.ForeignKeyConstraint(['profile_id'], ['invoice_profile.id'], name=op.f('fk_invoice_profile_id_invoice_profile'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provider_org_id'], ['organisation.id'], name=op.f('fk_invoice_provider_org_id_organisation')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user_account.id'], name=op.f('fk_invoice_requested_by_id_user_account')),
    sa.ForeignKeyConstraint(['reversed_by_id'], ['user_account.id'], name=op.f('fk_invoice_reversed_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice')),
    sa.UniqueConstraint('file_stored_name', name=op.f('uq_invoice_file_stored_name')),
    sa.UniqueConstraint('provider_org_id', 'number', name='uq_invoice_provider_number')
    )
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_buyer_org_id'), ['buyer_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_provider_org_id'), ['provider_org_id'], unique=False)
        batch_op.create_index('ix_invoice_status_requested_at', ['status', 'requested_at'], unique=False)

    op.create_table('contract_signature',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('side', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('signer_name', sa.String(length=100), nullable=False),
    sa.Column('organisation_name', sa.String(length=200), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=True),
    sa.Column('signed_at', marketplace.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=False),
    sa.CheckConstraint("side in ('buyer', 'provider')", name=op.f('ck_contract_signature_side')),
    sa.ForeignKeyConstraint(['contract_id'], ['contract.id'], name=op.f('fk_contract_signature_contract_id_contract')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_contract_signature_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_contract_signature_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_signature')),
    sa.UniqueConstraint('contract_id', 'side', name='uq_contract_signature_side')
    )
    with op.batch_alter_table('contract_signature', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_signature_contract_id'), ['contract_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('contract_signature', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contract_signature_contract_id'))

    op.drop_table('contract_signature')
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_status_requested_at')
        batch_op.drop_index(batch_op.f('ix_invoice_provider_org_id'))
        batch_op.drop_index(batch_op.f('ix_invoice_order_id'))
        batch_op.drop_index(batch_op.f('ix_invoice_buyer_org_id'))

    op.drop_table('invoice')
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_index('uq_contract_live_per_order', sqlite_where=sa.text("status <> 'superseded'"), postgresql_where=sa.text("status <> 'superseded'"))
        batch_op.drop_index('ix_contract_status_signed_at')
        batch_op.drop_index(batch_op.f('ix_contract_order_id'))

    op.drop_table('contract')
    with op.batch_alter_table('platform_fee_invoice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_platform_fee_invoice_provider_org_id'))

    op.drop_table('platform_fee_invoice')
    with op.batch_alter_table('invoice_profile', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_profile_organisation_id'))

    op.drop_table('invoice_profile')
