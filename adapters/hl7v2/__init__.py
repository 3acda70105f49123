"""The HL7 v2 dialect: ER7 messages over MLLP from hospital EHRs, and status messages back to them."""
