# An approval is imported by its id: the version's id, then /approval.APPROVAL_ID.
terraform import modelplane_model_approval.fraud_v7 's3://acme-models-prod?region=eu-west-1/fraud-scorer/7/approval.1796172919010-1d7b9786'
