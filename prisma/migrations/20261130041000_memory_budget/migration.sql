-- Memory plans (issue 16): a user-set memory budget per host (MiB; null: the budget its agent reports),
-- and a start priority per model (START ALL ENABLED starts higher ones first when memory is short).
ALTER TABLE "Host" ADD COLUMN "memoryBudgetMiB" INTEGER;
ALTER TABLE "Model" ADD COLUMN "startPriority" INTEGER;
